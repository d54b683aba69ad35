import Protocol

// A message's attachments as one column: the JSON array clients get, NULL for none. Written
// from records `AttachmentRules` checked; read back leniently (an entry that is not a whole
// attachment is skipped rather than failing the page it is on).
enum AttachmentsColumn {
    static func encode(_ list: [MessageAttachment]) -> String? {
        guard !list.isEmpty else { return nil }
        var w = JSONWriter(capacity: 128 * list.count)
        w.attachmentList(list)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    static func decode(_ text: String?) -> [MessageAttachment] {
        guard let text, let items = (try? JSONParser.parse(text))?.arrayValue else { return [] }
        return items.compactMap { item in
            guard let o = item.objectValue, let url = o["url"]?.stringValue, let name = o["name"]?.stringValue,
                  case .int(let size)? = o["size"], let type = o["content_type"]?.stringValue else { return nil }
            return MessageAttachment(url: url, name: name, size: size, contentType: type)
        }
    }
}
