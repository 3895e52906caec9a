"""Small real HTTP servers for the asset styles and faults the reference API lacks."""
