"""The command line: the only code that formats results for people."""
