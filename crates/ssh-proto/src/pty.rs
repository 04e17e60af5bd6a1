//! Terminal mode opcodes of a `pty-req` (RFC 4254 §8), the `u8` of each
//! `(opcode, value)` pair in [`PtyRequest::modes`](crate::PtyRequest::modes).
//! Character opcodes (1..=18) carry the character, 255 for none; flag
//! opcodes (30..=93) carry 0 or 1; the two speeds carry bits per second.
//! Opcodes 160..=255 are undefined and end parsing.

/// `TTY_OP_END`: Ends the list of modes.
pub const TTY_OP_END: u8 = 0;
/// `VINTR`: Interrupt character; 255 if none.
pub const VINTR: u8 = 1;
/// `VQUIT`: Quit character (SIGQUIT on POSIX).
pub const VQUIT: u8 = 2;
/// `VERASE`: Erase the character to the left of the cursor.
pub const VERASE: u8 = 3;
/// `VKILL`: Kill the current input line.
pub const VKILL: u8 = 4;
/// `VEOF`: End-of-file character (sends EOF from the terminal).
pub const VEOF: u8 = 5;
/// `VEOL`: End-of-line character in addition to carriage return and/or linefeed.
pub const VEOL: u8 = 6;
/// `VEOL2`: Additional end-of-line character.
pub const VEOL2: u8 = 7;
/// `VSTART`: Continues paused output (normally control-Q).
pub const VSTART: u8 = 8;
/// `VSTOP`: Pauses output (normally control-S).
pub const VSTOP: u8 = 9;
/// `VSUSP`: Suspends the current program.
pub const VSUSP: u8 = 10;
/// `VDSUSP`: Another suspend character.
pub const VDSUSP: u8 = 11;
/// `VREPRINT`: Reprints the current input line.
pub const VREPRINT: u8 = 12;
/// `VWERASE`: Erases a word left of the cursor.
pub const VWERASE: u8 = 13;
/// `VLNEXT`: Enters the next character typed literally.
pub const VLNEXT: u8 = 14;
/// `VFLUSH`: Character to flush output.
pub const VFLUSH: u8 = 15;
/// `VSWTCH`: Switch to a different shell layer.
pub const VSWTCH: u8 = 16;
/// `VSTATUS`: Prints a system status line (load, command, pid, ...).
pub const VSTATUS: u8 = 17;
/// `VDISCARD`: Toggles the flushing of terminal output.
pub const VDISCARD: u8 = 18;
/// `IGNPAR`: Ignore parity errors (0 or 1).
pub const IGNPAR: u8 = 30;
/// `PARMRK`: Mark parity and framing errors.
pub const PARMRK: u8 = 31;
/// `INPCK`: Enable checking of parity errors.
pub const INPCK: u8 = 32;
/// `ISTRIP`: Strip the 8th bit off characters.
pub const ISTRIP: u8 = 33;
/// `INLCR`: Map NL into CR on input.
pub const INLCR: u8 = 34;
/// `IGNCR`: Ignore CR on input.
pub const IGNCR: u8 = 35;
/// `ICRNL`: Map CR to NL on input.
pub const ICRNL: u8 = 36;
/// `IUCLC`: Translate uppercase characters to lowercase.
pub const IUCLC: u8 = 37;
/// `IXON`: Enable output flow control.
pub const IXON: u8 = 38;
/// `IXANY`: Any character restarts after a stop.
pub const IXANY: u8 = 39;
/// `IXOFF`: Enable input flow control.
pub const IXOFF: u8 = 40;
/// `IMAXBEL`: Ring the bell on input queue full.
pub const IMAXBEL: u8 = 41;
/// `IUTF8`: Input is UTF-8 (RFC 8160).
pub const IUTF8: u8 = 42;
/// `ISIG`: Enable signals INTR, QUIT, \[D\]SUSP.
pub const ISIG: u8 = 50;
/// `ICANON`: Canonicalize input lines.
pub const ICANON: u8 = 51;
/// `XCASE`: Enable input and output of uppercase characters by preceding their lowercase equivalents with a backslash.
pub const XCASE: u8 = 52;
/// `ECHO`: Enable echoing.
pub const ECHO: u8 = 53;
/// `ECHOE`: Visually erase chars.
pub const ECHOE: u8 = 54;
/// `ECHOK`: Kill character discards the current line.
pub const ECHOK: u8 = 55;
/// `ECHONL`: Echo NL even if ECHO is off.
pub const ECHONL: u8 = 56;
/// `NOFLSH`: Don't flush after interrupt.
pub const NOFLSH: u8 = 57;
/// `TOSTOP`: Stop background jobs from output.
pub const TOSTOP: u8 = 58;
/// `IEXTEN`: Enable extensions.
pub const IEXTEN: u8 = 59;
/// `ECHOCTL`: Echo control characters as ^(Char).
pub const ECHOCTL: u8 = 60;
/// `ECHOKE`: Visual erase for line kill.
pub const ECHOKE: u8 = 61;
/// `PENDIN`: Retype pending input.
pub const PENDIN: u8 = 62;
/// `OPOST`: Enable output processing.
pub const OPOST: u8 = 70;
/// `OLCUC`: Convert lowercase to uppercase.
pub const OLCUC: u8 = 71;
/// `ONLCR`: Map NL to CR-NL.
pub const ONLCR: u8 = 72;
/// `OCRNL`: Translate carriage return to newline (output).
pub const OCRNL: u8 = 73;
/// `ONOCR`: Translate newline to carriage return-newline (output).
pub const ONOCR: u8 = 74;
/// `ONLRET`: Newline performs a carriage return (output).
pub const ONLRET: u8 = 75;
/// `CS7`: 7 bit mode.
pub const CS7: u8 = 90;
/// `CS8`: 8 bit mode.
pub const CS8: u8 = 91;
/// `PARENB`: Parity enable.
pub const PARENB: u8 = 92;
/// `PARODD`: Odd parity, else even.
pub const PARODD: u8 = 93;
/// `TTY_OP_ISPEED`: Input baud rate in bits per second.
pub const TTY_OP_ISPEED: u8 = 128;
/// `TTY_OP_OSPEED`: Output baud rate in bits per second.
pub const TTY_OP_OSPEED: u8 = 129;

/// The first undefined opcode (RFC 4254 §8): parsing stops here.
pub const FIRST_UNDEFINED: u8 = 160;
