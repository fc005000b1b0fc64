//! The conformance corpus: chunks holding every msgpack type the agent can emit, in both record
//! layouts and every timestamp encoding. Every language's `stdout` example must print exactly
//! the lines in `tests/conformance/<config>/<case>.jsonl` for them.
//!
//! The chunks are written here, as code, so that each byte has a reason next to it; the
//! expected lines were checked against Fluent Bit 5.1.1's own `stdout` output (see
//! `tests/conformance/README.md`).

/// A msgpack value with its exact wire form: each variant picks the marker, so the corpus
/// covers every width the agent's encoder (msgpack-c) can produce.
#[derive(Clone, Debug)]
pub enum M {
    Nil,
    Bool(bool),
    /// Positive fixint, 0..=127.
    PFix(u8),
    /// Negative fixint, -32..=-1.
    NFix(i8),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// A `str` of the smallest width for its length; the bytes need not be UTF-8.
    Str(Vec<u8>),
    Bin(Vec<u8>),
    Arr(Vec<M>),
    Map(Vec<(M, M)>),
    Ext(i8, Vec<u8>),
}

fn s(text: &str) -> M {
    M::Str(text.as_bytes().to_vec())
}

fn map(entries: Vec<(&str, M)>) -> M {
    M::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
}

impl M {
    pub fn encode(&self, out: &mut Vec<u8>) {
        use rmp::encode as e;
        match self {
            M::Nil => e::write_nil(out).unwrap(),
            M::Bool(b) => e::write_bool(out, *b).unwrap(),
            M::PFix(n) => e::write_pfix(out, *n).unwrap(),
            M::NFix(n) => e::write_nfix(out, *n).unwrap(),
            M::U8(n) => e::write_u8(out, *n).unwrap(),
            M::U16(n) => e::write_u16(out, *n).unwrap(),
            M::U32(n) => e::write_u32(out, *n).unwrap(),
            M::U64(n) => e::write_u64(out, *n).unwrap(),
            M::I8(n) => e::write_i8(out, *n).unwrap(),
            M::I16(n) => e::write_i16(out, *n).unwrap(),
            M::I32(n) => e::write_i32(out, *n).unwrap(),
            M::I64(n) => e::write_i64(out, *n).unwrap(),
            M::F32(f) => e::write_f32(out, *f).unwrap(),
            M::F64(f) => e::write_f64(out, *f).unwrap(),
            M::Str(bytes) => {
                e::write_str_len(out, bytes.len() as u32).unwrap();
                out.extend_from_slice(bytes);
            }
            M::Bin(bytes) => e::write_bin(out, bytes).unwrap(),
            M::Arr(items) => {
                e::write_array_len(out, items.len() as u32).unwrap();
                items.iter().for_each(|item| item.encode(out));
            }
            M::Map(entries) => {
                e::write_map_len(out, entries.len() as u32).unwrap();
                for (k, v) in entries {
                    k.encode(out);
                    v.encode(out);
                }
            }
            M::Ext(kind, payload) => {
                e::write_ext_meta(out, payload.len() as u32, *kind).unwrap();
                out.extend_from_slice(payload);
            }
        }
    }
}

/// A record's timestamp, in one of the encodings the agent accepts.
#[derive(Clone, Copy, Debug)]
pub enum Ts {
    /// Ext type 0: big-endian u32 seconds, u32 nanoseconds (what current agents write).
    Event(u32, u32),
    Int(i64),
    Float(f64),
    /// A group marker: -1 opens a group (the body holds its attributes), -2 closes it. The
    /// agent writes them as EventTime with those seconds as u32 (its decoder rejects a chunk
    /// whose marker is a plain negative integer).
    Group(i32),
}

impl Ts {
    fn to_m(self) -> M {
        match self {
            Ts::Event(seconds, nanos) => event_time(seconds, nanos),
            // msgpack-c, the agent's encoder, packs integers in their smallest form.
            Ts::Int(n) => M::U32(n as u32),
            Ts::Group(n) => event_time(n as u32, 0),
            Ts::Float(f) => M::F64(f),
        }
    }
}

fn event_time(seconds: u32, nanos: u32) -> M {
    let mut payload = seconds.to_be_bytes().to_vec();
    payload.extend_from_slice(&nanos.to_be_bytes());
    M::Ext(0, payload)
}

/// `[[ts, metadata], body]`, the layout of current agents.
pub fn record(ts: Ts, metadata: M, body: M) -> M {
    M::Arr(vec![M::Arr(vec![ts.to_m(), metadata]), body])
}

/// `[ts, body]`, the layout of older agents and of the forward protocol.
pub fn forward_record(ts: Ts, body: M) -> M {
    M::Arr(vec![ts.to_m(), body])
}

/// One corpus case: a chunk and the reason it exists.
pub struct Case {
    pub name: &'static str,
    pub about: &'static str,
    pub records: Vec<M>,
}

impl Case {
    pub fn chunk(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.records.iter().for_each(|r| r.encode(&mut out));
        out
    }
}

/// The time every case uses unless it is about time: 2023-11-14T22:13:20.5Z.
const T: Ts = Ts::Event(1_700_000_000, 500_000_000);

fn empty() -> M {
    M::Map(Vec::new())
}

/// Every case, in a stable order.
pub fn cases() -> Vec<Case> {
    vec![
        Case { name: "empty-chunk", about: "a chunk with no records prints nothing", records: vec![] },
        Case {
            name: "integers",
            about: "every integer width and sign, their extremes, and 2^53 + 1 (beyond a double)",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("pfix", M::PFix(127)),
                    ("nfix", M::NFix(-32)),
                    ("u8", M::U8(255)),
                    ("u16", M::U16(65535)),
                    ("u32", M::U32(4_294_967_295)),
                    ("u64", M::U64(u64::MAX)),
                    ("i8", M::I8(-128)),
                    ("i16", M::I16(-32768)),
                    ("i32", M::I32(i32::MIN)),
                    ("i64", M::I64(i64::MIN)),
                    ("zero", M::PFix(0)),
                    ("i64_positive", M::I64(9_007_199_254_740_993)),
                    ("u64_2p53p1", M::U64(9_007_199_254_740_993)),
                ]),
            )],
        },
        Case {
            name: "floats",
            about: "float 32 (widened) and 64: integral, fractional, tiny, huge, negative zero, infinities, NaN",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("f64_one", M::F64(1.0)),
                    ("f64_tenth", M::F64(0.1)),
                    ("f64_third", M::F64(1.0 / 3.0)),
                    ("f64_neg", M::F64(-2.5)),
                    ("f64_big_integral", M::F64(123_456_789_012_345_680.0)),
                    ("f64_1e16", M::F64(1e16)),
                    ("f64_1e15", M::F64(1e15)),
                    ("f64_1e20", M::F64(1e20)),
                    ("f64_tiny", M::F64(1.5e-7)),
                    ("f64_min_positive", M::F64(5e-324)),
                    ("f64_max", M::F64(f64::MAX)),
                    ("f64_neg_zero", M::F64(-0.0)),
                    ("f64_inf", M::F64(f64::INFINITY)),
                    ("f64_neg_inf", M::F64(f64::NEG_INFINITY)),
                    ("f64_nan", M::F64(f64::NAN)),
                    ("f32_half", M::F32(0.5)),
                    ("f32_tenth", M::F32(0.1)),
                    ("f32_big", M::F32(3.4e38)),
                ]),
            )],
        },
        Case {
            name: "booleans-and-nil",
            about: "true, false and nil, as values and inside arrays",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("yes", M::Bool(true)),
                    ("no", M::Bool(false)),
                    ("nothing", M::Nil),
                    ("list", M::Arr(vec![M::Bool(true), M::Nil, M::Bool(false)])),
                ]),
            )],
        },
        Case {
            name: "string-escapes",
            about: "JSON escapes, every control character class, DEL, slash, and the empty string",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("quote", s("say \"hi\"")),
                    ("backslash", s("C:\\path\\to")),
                    ("slash", s("a/b</script>")),
                    ("named", s("b\u{8} f\u{c} n\n r\r t\t")),
                    ("controls", M::Str(vec![0x00, 0x01, 0x07, 0x0b, 0x0e, 0x1b, 0x1f, 0x20, 0x7f])),
                    ("empty", s("")),
                    ("percent", s("100% %s %d %n")),
                ]),
            )],
        },
        Case {
            name: "unicode",
            about: "2-, 3- and 4-byte UTF-8 (escaped as \\uXXXX and surrogate pairs by default), in keys too",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("latin", s("caf\u{e9} \u{fc}ber")),
                    ("cjk", s("\u{65e5}\u{672c}\u{8a9e}")),
                    ("emoji", s("ok \u{1f600}!")),
                    ("rtl", s("\u{5e9}\u{5dc}\u{5d5}\u{5dd}")),
                    ("cl\u{e9}", s("key with an accent")),
                    ("bom_and_nbsp", s("\u{feff}a\u{a0}b")),
                    ("max_scalar", s("\u{10ffff}")),
                ]),
            )],
        },
        Case {
            name: "invalid-utf8",
            about: "str values that are not UTF-8: stray continuation, truncated sequence, overlong, 0xff",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("stray", M::Str(b"a\x80b".to_vec())),
                    ("truncated", M::Str(b"\xe6\x97".to_vec())),
                    ("truncated_mid", M::Str(b"x\xf0\x9f\x98y".to_vec())),
                    ("overlong", M::Str(b"\xc0\xaf".to_vec())),
                    ("ff", M::Str(b"\xff\xfe".to_vec())),
                    ("surrogate", M::Str(b"\xed\xa0\x80".to_vec())),
                ]),
            )],
        },
        Case {
            name: "string-widths",
            about: "fixstr, str 8, str 16 and str 32 lengths (31, 200, 300 and 70000 bytes)",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("fix", M::Str(vec![b'a'; 31])),
                    ("str8", M::Str(vec![b'b'; 200])),
                    ("str16", M::Str(vec![b'c'; 300])),
                    ("str32", M::Str(vec![b'd'; 70_000])),
                ]),
            )],
        },
        Case {
            name: "binary-and-ext",
            about: "bin values (printed as strings) and extension values other than timestamps",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("bin", M::Bin(b"plain text".to_vec())),
                    ("bin_bytes", M::Bin(vec![0x00, 0x01, 0x7f, 0x80, 0xff, b'"', b'\\'])),
                    ("bin_empty", M::Bin(vec![])),
                    ("bin16", M::Bin(vec![b'z'; 300])),
                    ("fixext1", M::Ext(5, vec![0x7f])),
                    ("fixext4", M::Ext(-3, vec![0x00, 0x80, 0xfe, 0x41])),
                    ("ext8", M::Ext(42, vec![1, 2, 3])),
                ]),
            )],
        },
        Case {
            name: "nested",
            about: "maps in arrays in maps, ten levels deep, empty map and array, map with 20 keys",
            records: vec![record(
                T,
                empty(),
                map(vec![
                    ("empty_map", empty()),
                    ("empty_array", M::Arr(vec![])),
                    (
                        "deep",
                        (0..10).fold(s("bottom"), |inner, level| {
                            if level % 2 == 0 { M::Arr(vec![M::PFix(level), inner]) } else { map(vec![("x", inner)]) }
                        }),
                    ),
                    ("wide", M::Map((0..20).map(|i| (M::Str(format!("k{i:02}").into_bytes()), M::PFix(i))).collect())),
                    (
                        "mixed",
                        M::Arr(vec![map(vec![("a", M::Arr(vec![empty(), M::Arr(vec![])]))]), M::F64(2.0), s("x")]),
                    ),
                ]),
            )],
        },
        Case {
            name: "map-keys",
            about: "duplicate keys (the agent keeps the last), non-string keys, an empty key",
            records: vec![record(
                T,
                empty(),
                M::Map(vec![
                    (s("dup"), M::PFix(1)),
                    (s("other"), s("kept")),
                    (s("dup"), M::PFix(2)),
                    (M::PFix(7), s("int key")),
                    (M::Bool(true), s("bool key")),
                    (M::Nil, s("nil key")),
                    (s(""), s("empty key")),
                    (s("nested"), M::Map(vec![(s("a"), M::PFix(1)), (s("a"), M::PFix(2))])),
                ]),
            )],
        },
        Case {
            name: "metadata",
            about: "records with metadata, printed under __internal__; one without, printed without it",
            records: vec![
                record(
                    T,
                    map(vec![("otlp", map(vec![("severity", s("INFO")), ("trace", M::Bin(vec![0xab, 0xcd]))]))]),
                    map(vec![("msg", s("with metadata"))]),
                ),
                record(T, empty(), map(vec![("msg", s("without metadata"))])),
                record(T, map(vec![("n", M::NFix(-1))]), empty()),
            ],
        },
        Case {
            name: "groups",
            about: "an OpenTelemetry group: start marker with attributes, two records, end marker, then a plain one",
            records: vec![
                record(Ts::Group(-1), map(vec![("schema", s("otlp"))]), map(vec![("resource", s("svc-a"))])),
                record(T, empty(), map(vec![("msg", s("in group 1"))])),
                record(T, map(vec![("k", s("v"))]), map(vec![("msg", s("in group 2"))])),
                record(Ts::Group(-2), empty(), empty()),
                record(T, empty(), map(vec![("msg", s("after the group"))])),
            ],
        },
        Case {
            name: "event-times",
            about: "EventTime with zero, round, full and maximal nanoseconds, the epoch and a date past 2038",
            records: vec![
                record(Ts::Event(1_700_000_000, 0), empty(), map(vec![("ns", M::PFix(0))])),
                record(Ts::Event(1_700_000_000, 123_456_789), empty(), map(vec![("ns", s("123456789"))])),
                record(Ts::Event(1_700_000_000, 999_999_999), empty(), map(vec![("ns", s("999999999"))])),
                record(Ts::Event(1_700_000_001, 1_000), empty(), map(vec![("ns", s("1000"))])),
                record(Ts::Event(0, 0), empty(), map(vec![("at", s("epoch"))])),
                record(Ts::Event(4_102_444_800, 250_000_000), empty(), map(vec![("at", s("2100"))])),
            ],
        },
        Case {
            name: "integer-and-float-times",
            about: "timestamps as plain integers and floats of seconds, as older agents and forwarders send them",
            records: vec![
                record(Ts::Int(1_700_000_000), empty(), map(vec![("time", s("int"))])),
                record(Ts::Float(1_700_000_000.25), empty(), map(vec![("time", s("float"))])),
                record(Ts::Float(1_700_000_000.0), empty(), map(vec![("time", s("integral float"))])),
            ],
        },
        Case {
            name: "forward-layout",
            about: "the old [ts, body] layout with all three timestamp encodings",
            records: vec![
                forward_record(T, map(vec![("layout", s("forward")), ("n", M::PFix(1))])),
                forward_record(Ts::Int(1_700_000_002), map(vec![("layout", s("forward")), ("n", M::PFix(2))])),
                forward_record(Ts::Float(1_700_000_003.75), map(vec![("layout", s("forward")), ("n", M::PFix(3))])),
            ],
        },
        Case {
            name: "many-records",
            about: "500 records in one chunk: output must be complete and in order",
            records: (0..500u32)
                .map(|i| {
                    record(
                        Ts::Event(1_700_000_000 + i, i * 1_000_000),
                        empty(),
                        map(vec![
                            ("seq", M::U32(i)),
                            ("level", s(["info", "warn", "error"][(i % 3) as usize])),
                            ("msg", M::Str(format!("request {i} took {} ms", i * 7 % 1000).into_bytes())),
                            ("ratio", M::F64(f64::from(i) / 7.0)),
                        ]),
                    )
                })
                .collect(),
        },
    ]
}

/// The `stdout` example's keys each expected-output directory was made with.
pub fn configs() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        ("default", vec![]),
        ("iso8601-utf8", vec![("json_date_key", "ts"), ("json_date_format", "iso8601"), ("escape_unicode", "off")]),
        ("epoch", vec![("json_date_format", "epoch")]),
        ("epoch_ms", vec![("json_date_format", "epoch_ms")]),
        ("java_sql_timestamp", vec![("json_date_format", "java_sql_timestamp")]),
        ("no-date", vec![("json_date_key", "off")]),
    ]
}
