"""The I/O layer: national records, cohort files and tables. Only this package reads data files."""
