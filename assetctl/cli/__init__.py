"""The command layer: parse arguments, call the core, render results."""
