// Package readerconfig reads and writes Lintel's reader configuration files
// (SPEC 6.2): the same content as the SECard "PSE" files the seeds import
// (a closed format), written as documented text an operator can read and
// edit.
//
// The package is pure: no I/O, no clock, no randomness. A [Config] is plain
// values, so it can sit in the replicated state and encode to the same bytes
// on every node.
//
// # The file
//
// The first line is exactly
//
//	lintel-reader-config 1
//
// Then come "key = value" lines, blank lines and comments. This is a whole
// file; every other key has a default:
//
//	lintel-reader-config 1
//	name = London
//
// Layout rules:
//
//   - The file is UTF-8 text, at most [MaxSize] bytes (64 KiB). Lines end with
//     LF or CRLF; a UTF-8 byte order mark at the very start is ignored. Lines
//     are at most [MaxLineLen] bytes. NUL bytes and control characters other
//     than tab are refused anywhere, comments included.
//   - A comment is a line whose first non-blank character is "#". There are
//     no trailing comments: "#" inside a value is part of the value, because
//     names like "Building #2" are common, so "tech.desfire = on # door"
//     is refused rather than silently read as a name or description.
//   - A setting is "key = value": the key is everything before the first "=",
//     the value everything after it, both trimmed of spaces and tabs. There
//     is no quoting, so a value cannot start or end with a space.
//   - Keys are lower case and case-sensitive; each key appears at most once;
//     order does not matter.
//   - The header may have trailing spaces; it must be the first line.
//
// # Keys
//
//	key                   value                       default
//	name                  text, 1-100 characters      (required)
//	description           text, 0-200 characters      empty
//	site_key_id           [A-Za-z0-9_-], 0-64 chars   empty: the site's default key
//	reader_settings       on | off                    on
//	tech.desfire          on | off                    on
//	tech.plus_sl3         on | off                    off
//	tech.classic_sl1      on | off                    off
//	tech.ultralight_c     on | off                    off
//	tech.blue_mobile_id   on | off                    on
//	tech.nfc_hce          on | off                    off
//	tech.cps3             on | off                    off
//	tech.125khz           on | off                    off
//	mode.badge            off | RANGE                 contact
//	mode.slide            off | RANGE                 off
//	mode.tap_tap          off | RANGE                 off
//	mode.remote           off | RANGE                 off
//	mode.hands_free       off | RANGE                 off
//	remote.1              on | off                    off
//	remote.2              on | off                    off
//
// RANGE is one of contact, very_short, short, medium, long: from the phone
// touching the reader to the reader's longest range, up to about 3 m (the
// seed's "Up to ~ 3m"). The reader decides the distances.
//
// name is the Blue Mobile ID configuration name; it must be unique in the
// account, which the state machine checks, not this package. name and
// description may not hold control characters, line or paragraph separators,
// bidirectional marks or U+FEFF: they are shown in lists, and such
// characters make two names look alike or change what is displayed around
// them.
//
// reader_settings is the preview's "Reader" row: the configuration carries
// reader settings as well as chip settings. The mode.* keys are the Blue
// Mobile ID identification modes and only matter while tech.blue_mobile_id is
// on; remote.1 and remote.2 are the buttons of the remote mode. The
// technology and mode defaults are the seed's "London" preview, except that
// only badge mode is on: hands-free and remote opening are opted into, never
// inherited.
//
// Two rules span keys, because the file would describe a reader that can read
// nothing: with tech.blue_mobile_id on, at least one mode must be on; and at
// least one tech.* must be on.
//
// # Errors
//
// [Parse] reports every problem it finds (up to [MaxErrors]) as an
// [ErrorList] of [*Error], each with its line number, in line order; a
// problem of the whole file (name missing, the cross-key rules) is given the
// line of the key concerned or the last line. Each message says what is wrong
// and what to write instead, e.g.
//
//	line 4: tech.desfire must be on or off, not "maybe"
//
// # JSON
//
// A Config encodes with the file's key names, nested at the dot:
// "tech.desfire" is {"tech": {"desfire": true}}, "remote.1" is
// {"remote": {"1": false}}, and a mode is its word ("contact", "off").
package readerconfig
