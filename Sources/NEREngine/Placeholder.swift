// NEREngine: under construction.
