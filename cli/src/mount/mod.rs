//! The mount point and mount(8): the mount helper's call form ([`helper`]) and the checks of the
//! mountpoint ([`mountpoint`]).

pub mod helper;
pub mod mountpoint;
