//! Everything an SMTP server says up to STARTTLS, through the dialog's
//! reply reader; the same bytes in one read and in many give the same dialog.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsscan::fuzzing::smtp(data));
