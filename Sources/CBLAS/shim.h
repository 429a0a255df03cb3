// OpenBLAS's CBLAS interface; the include path comes from pkg-config (openblas).
#include <cblas.h>

// LAPACK's Cholesky factorisation, which OpenBLAS exports without a header.
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
