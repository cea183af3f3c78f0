"""The operator console at `/console`: operators, the read models its pages show, the pages."""
