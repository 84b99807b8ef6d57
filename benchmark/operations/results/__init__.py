"""Results as data: runs read into tables (export) and the notebook API built on them."""
