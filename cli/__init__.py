"""The `facetrace` command line: click commands only (parse, call the scanner, print)."""
