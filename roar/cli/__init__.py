"""The command line: thin modules that parse and print, one per verb group."""
