import CFFmpeg

/// An owned AVDictionary of options, freed on deinit. Keys and values come
/// from typed Swift values in this module, never from manifest strings.
final class AVOptions {
    var raw: OpaquePointer?

    init(_ pairs: [(String, String)] = []) {
        for (k, v) in pairs { set(k, v) }
    }

    func set(_ key: String, _ value: String) { av_dict_set(&raw, key, value, 0) }

    deinit { av_dict_free(&raw) }
}
