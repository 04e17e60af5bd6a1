#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ssh_proto_fuzz::ssh_config(data));
