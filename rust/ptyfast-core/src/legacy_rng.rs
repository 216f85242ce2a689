//! NumPy's legacy `RandomState` stream (MT19937 with `init_genrand` seeding), reproduced
//! bit-exactly for the draws the reference's grouping makes: `permutation`, `choice` with and
//! without replacement.
