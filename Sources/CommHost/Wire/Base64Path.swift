import CommBase64

extension Base64 {
    /// Which loop does the long middle of an encode or a decode: the portable scalar code alone,
    /// or a vector loop of `CommBase64` first (the scalar code always does the tail, the padding
    /// and every error). Every path gives the same text, the same bytes and the same errors;
    /// ``supported`` lists those this CPU runs, so tests can run each one.
    struct Path: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The `commhost_base64_path` value.
        var rawValue: commhost_base64_path

        init(rawValue: commhost_base64_path) { self.rawValue = rawValue }

        /// `COMMHOST_BASE64_SCALAR`: no vector loop.
        static let scalar = Path(rawValue: commhost_base64_path(COMMHOST_BASE64_SCALAR))
        /// `COMMHOST_BASE64_SSSE3`: 16-byte loops.
        static let ssse3 = Path(rawValue: commhost_base64_path(COMMHOST_BASE64_SSSE3))
        /// `COMMHOST_BASE64_AVX2`: 32-byte loops.
        static let avx2 = Path(rawValue: commhost_base64_path(COMMHOST_BASE64_AVX2))

        /// The paths this CPU runs, narrowest first; `scalar` is always first.
        static let supported: [Path] = {
            let mask = commhost_base64_supported_paths()
            return [scalar, ssse3, avx2].filter { mask & (1 << UInt32($0.rawValue)) != 0 }
        }()

        /// The path taken unless one is named: the widest this CPU runs.
        static let fastest: Path = supported.last ?? scalar

        var description: String {
            switch self {
            case .scalar: "scalar"
            case .ssse3: "ssse3"
            case .avx2: "avx2"
            default: "path \(rawValue)"
            }
        }
    }
}
