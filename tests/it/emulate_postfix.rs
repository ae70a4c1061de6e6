//! A Postfix smtp client delivering to `hsscan emulate --profile
//! exchange2007`: the emulator's log shows the ClientHello Postfix really
//! sends, decoded.
