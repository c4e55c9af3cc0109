//! gev-harness: benchmark sweeps and regression comparisons of gev servers.
