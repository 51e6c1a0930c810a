//! Disassembler generated from the decode table.
