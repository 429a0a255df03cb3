// NERDispatch: under construction.
