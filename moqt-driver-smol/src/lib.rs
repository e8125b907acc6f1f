//! moq-lite driver for smol (work in progress: the core comes first).
