#pragma once

#include <cstdio>
#include <cstdlib>

// PIM_CHECK(cond): a broken invariant (a bug, not bad input) aborts with the location.
#define PIM_CHECK(cond)                                                                  \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
