"""Unit tests: nothing running, no network; a package so module names cannot clash."""
