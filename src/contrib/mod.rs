//! Fabric's `fabric.contrib`: helpers built on the operations, under the
//! names and with the defaults Fabric gives them; and [`config`], a
//! generated configuration file against the one on the host.

pub mod config;
pub mod files;
pub mod project;
