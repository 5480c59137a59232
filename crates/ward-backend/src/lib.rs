//! ward-backend
