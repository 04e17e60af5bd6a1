#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ssh_proto_fuzz::forwarding(data));
