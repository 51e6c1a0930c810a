pub mod fp;
