import CFFmpeg

/// An owned AVDictionary of options, freed on deinit. Keys and values come
/// from typed Swift values in this module, never from manifest strings.
final class AVOptions {
    var raw: OpaquePointer?

    init(_ pairs: [(String, String)] = []) {
        for (k, v) in pairs { set(k, v) }
    }

    func set(_ key: String, _ value: String) { av_dict_set(&raw, key, value, 0) }

    func get(_ key: String) -> String? {
        guard let entry = av_dict_get(raw, key, nil, 0), let value = entry.pointee.value else { return nil }
        return String(cString: value)
    }

    deinit { av_dict_free(&raw) }
}
