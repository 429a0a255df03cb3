// NERRegistry: under construction.
