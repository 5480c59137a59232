//! ward-tls
