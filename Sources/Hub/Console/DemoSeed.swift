import Core
import Persistence
import Protocol

// Development mode's living console: demo users of each role, the client's assignments, a few
// messages and notifications. Seeded once per data folder (on the first start that finds no
// demo client), on the main thread before the loops run.
enum DemoSeed {
    static let users = [
        UserRecord(id: "demo-client", role: "client", name: "Cleo Client", email: "cleo@example.com"),
        UserRecord(id: "demo-web", role: "website_agent", name: "Wes Website"),
        UserRecord(id: "demo-mkt", role: "marketing_agent", name: "Mara Marketing"),
        UserRecord(id: "demo-admin", role: "admin", name: "Ada Admin"),
    ]

    static func seedIfNeeded(_ store: Store & NotificationStore, directory: any AssignmentDirectory) {
        guard case .success(nil) = waitForStore({ store.user("demo-client", completion: $0) }) else { return }
        let now = wallMillis()
        for u in users { _ = waitForStore { store.upsertUser(u, now: now, completion: $0) } }
        let website = ConversationKey(service: "website", clientId: "demo-client")
        let marketing = ConversationKey(service: "marketing", clientId: "demo-client")
        for (key, agent) in [(website, "demo-web"), (marketing, "demo-mkt")] {
            _ = waitForStore { store.setAssignment(Assignment(conversation: key, agentId: agent), now: now, completion: $0) }
            directory.setAgent(agent, for: key)
        }
        let lines: [(ConversationKey, UserRecord, String)] = [
            (website, users[0], "Hi! Is my new landing page ready to review?"),
            (website, users[1], "Almost: the hero section is done, I am finishing the contact form."),
            (website, users[1], "I'll send you a preview link this afternoon."),
            (marketing, users[2], "Your October campaign report is ready: clicks are up 18%."),
        ]
        for (i, (key, sender, text)) in lines.enumerated() {
            let m = NewMessage(conversation: key, sender: sender, text: text, clientMsgId: "demo-\(i)", ts: now - Int64(lines.count - i) * 60_000)
            _ = waitForStore { store.appendMessage(m, notify: [], completion: $0) }
        }
        let notes: [(String, String, String, String)] = [
            ("wallet", "payments", "Payment received", "Your top-up of $120.00 is in your wallet."),
            ("website", "updates", "SSL certificate renewed", "cleo-studio.example is secured until next November."),
            ("courses", "updates", "Lesson 4 unlocked", "Email marketing basics: lesson 4 is ready."),
            ("marketing", "analytics", "Weekly analytics", "Visits +12% week over week."),
        ]
        for (service, category, title, body) in notes {
            let content = NotificationContent(service: service, category: category, title: title, body: body, data: "{}")
            _ = waitForStore { store.createNotifications(content, users: ["demo-client"], now: now, emailDelayMs: 0, claim: nil, completion: $0) }
        }
        Log.info("demo_seeded", ["users": "\(users.count)", "messages": "\(lines.count)", "notifications": "\(notes.count)"])
    }
}
