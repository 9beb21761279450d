//! Fabric's `fabric.contrib`: helpers built on the operations, under the
//! names and with the defaults Fabric gives them.

pub mod files;
pub mod project;
