"""Figures are content-keyed (:func:`collapselab.scoring.plots._cached`): the same arguments give the
cached PNG without drawing, the bytes a fresh drawing gives; other numbers draw a new figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from collapselab.scoring import plots


def _series(last: float) -> list[plots.Series]:
    return [plots.Series("a", (0.1, 0.2, 0.3, 1.0), {"mean": [1.0, 2.0, last], "low": [0.5, 1.5, last - 0.5],
                                                    "high": [1.5, 2.5, last + 0.5]})]


def test_the_same_figure_is_copied_from_the_cache_and_other_numbers_are_drawn(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path / "cache"))
    saved: list[Path] = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (saved.append(path), save(fig, path)))
    plots.curves_figure("t", "nats", _series(3.0), _series(1.5), tmp_path / "a.png")
    plots.curves_figure("t", "nats", _series(3.0), _series(1.5), tmp_path / "b.png")
    assert saved == [tmp_path / "a.png"]  # the second was not drawn
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    plots.curves_figure("t", "nats", _series(3.0 + 1e-12), _series(1.5), tmp_path / "c.png")
    assert saved == [tmp_path / "a.png", tmp_path / "c.png"]  # a last-bit change is another figure
    assert plots.metrics_figure({"m": _series(2.0)}, tmp_path / "m.png") == ["m"]
    assert plots.metrics_figure({"m": _series(2.0)}, tmp_path / "n.png") == ["m"] and len(saved) == 3
    assert plots.metrics_figure({}, tmp_path / "none.png") == [] and not (tmp_path / "none.png").exists()


@pytest.mark.parametrize("cached_first", [True, False])
def test_a_cached_figure_has_the_bytes_of_a_fresh_drawing(tmp_path, monkeypatch, cached_first):
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path / "cache"))
    if cached_first:
        plots.curves_figure("t", "nats", _series(3.0), _series(1.5), tmp_path / "warm.png")
    plots.curves_figure("t", "nats", _series(3.0), _series(1.5), tmp_path / "out.png")
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path / "empty"))
    plots.curves_figure("t", "nats", _series(3.0), _series(1.5), tmp_path / "fresh.png")
    assert (tmp_path / "out.png").read_bytes() == (tmp_path / "fresh.png").read_bytes()
