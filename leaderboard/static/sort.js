// Sortable tables of the CollapseLab leaderboard: click a column header to sort by it,
// click again to reverse (score columns start with the best first: data-first="descending"). Cells sort by their data-value (numbers where the column says so);
// empty values always go last. No dependencies, works from file://.
(function () {
  "use strict";

  function value(row, column, numeric) {
    var cell = row.cells[column];
    var raw = cell ? cell.getAttribute("data-value") : null;
    if (raw === null || raw === "") { return null; }
    return numeric ? parseFloat(raw) : raw.toLowerCase();
  }

  function sortBy(table, header) {
    var column = parseInt(header.getAttribute("data-col"), 10);
    var numeric = header.getAttribute("data-type") === "number";
    var current = header.getAttribute("aria-sort");
    var ascending = current ? current !== "ascending" : header.getAttribute("data-first") !== "descending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, column, numeric), y = value(b, column, numeric);
      if (x === null && y === null) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("th[data-col]").forEach(function (other) {
      other.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("th[data-col]").forEach(function (header) {
        var button = header.querySelector("button");
        (button || header).addEventListener("click", function () { sortBy(table, header); });
      });
    });
  });
})();
