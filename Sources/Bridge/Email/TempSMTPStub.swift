// TEMPORARY (lead's compile stub until SMTPClient.swift lands; delete then).
public struct SMTPConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var from: String
    public var heloName: String
    public var timeoutMs: Int
    public init(host: String, port: Int, from: String, heloName: String = "montrose-hub", timeoutMs: Int = 10_000) {
        self.host = host; self.port = port; self.from = from; self.heloName = heloName; self.timeoutMs = timeoutMs
    }
    public static func parse(_ hostPort: String, from: String) -> SMTPConfiguration? { nil }
}
public struct MailMessage: Sendable, Equatable {
    public var to: String
    public var subject: String
    public var body: String
    public init(to: String, subject: String, body: String) { self.to = to; self.subject = subject; self.body = body }
}
public enum SMTPOutcome: Sendable, Equatable { case sent, transient(String), permanent(String) }
public enum SMTPClient {
    public static func send(_ mail: MailMessage, with config: SMTPConfiguration) -> SMTPOutcome { .transient("stub") }
}
