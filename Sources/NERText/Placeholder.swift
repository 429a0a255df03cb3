// NERText: under construction.
