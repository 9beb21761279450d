//! Fabric's `fabric.contrib`: helpers built on the operations.

pub mod project;
