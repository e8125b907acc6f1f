//! moq-lite driver for tokio (work in progress: the core comes first).
