"""HTTP handlers, one module per verb; ``routing`` parses the path and picks one."""
