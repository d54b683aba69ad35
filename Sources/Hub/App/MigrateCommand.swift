import Foundation
import Glibc
import Persistence

// `montrose-hub migrate --from sqlite:PATH --to postgres://… [--verify-only]`: the copy and
// its check live in Persistence (StoreMigration); this parses the flags and prints.

struct MigrateCommand: Sendable, Equatable {
    let sqlitePath: String
    let postgresURL: String
    let verifyOnly: Bool

    /// Flags only (no environment): a one-off operator's step names both stores explicitly.
    static func parse(_ args: [String]) throws(Configuration.Invalid) -> MigrateCommand {
        var from: StoreLocation?
        var to: StoreLocation?
        var verifyOnly = false
        let usage = "montrose-hub migrate --from sqlite:PATH --to postgres://… [--verify-only]"
        for (name, value) in try Configuration.flags(args, valued: ["from", "to"], switches: ["verify-only"], help: usage) {
            switch name {
            case "verify-only": verifyOnly = true
            default:
                guard (name == "from" ? from : to) == nil else { throw Configuration.Invalid(description: "--\(name) given twice") }
                let location = try StoreLocation.parse(value ?? "", "--" + name)
                if name == "from" { from = location } else { to = location }
            }
        }
        guard case .sqlite(let path)? = from else {
            throw Configuration.Invalid(description: "migrate needs --from sqlite:PATH (the stopped hub's SQLite file)")
        }
        guard case .postgres(let url)? = to else {
            throw Configuration.Invalid(description: "migrate needs --to postgres://USER@HOST:PORT/DATABASE")
        }
        return MigrateCommand(sqlitePath: path, postgresURL: url, verifyOnly: verifyOnly)
    }

    /// Runs it and exits: 0 when every table matches, 1 naming a table that differs, 2 when
    /// it could not run (refused, or a store unreachable).
    func run() -> Never {
        let target = StoreLocation.postgres(url: postgresURL).description
        let progress: (String) -> Void = { print("montrose-hub: \($0)") }
        do {
            let reports: [MigrationTableReport]
            if verifyOnly {
                print("montrose-hub: verifying sqlite:\(sqlitePath) against \(target)")
                reports = try StoreMigration.verify(sqlitePath: sqlitePath, postgresURL: postgresURL, progress: progress)
            } else {
                print("montrose-hub: migrating sqlite:\(sqlitePath) to \(target)")
                reports = try StoreMigration.migrate(sqlitePath: sqlitePath, postgresURL: postgresURL,
                                                     now: Int64(Date().timeIntervalSince1970 * 1000), progress: progress)
            }
            print(StoreMigration.summary(reports))
            if let differing = reports.first(where: { !$0.matches }) {
                print("montrose-hub: table \(differing.table) differs")
                exit(1)
            }
            print("montrose-hub: every table matches (\(reports.count) tables, \(reports.reduce(0) { $0 + $1.targetRows }) rows)")
            exit(0)
        } catch let e as StoreMigrationError {
            FileHandle.standardError.write(Data("montrose-hub: \(e.description)\n".utf8))
            if case .mismatch = e { exit(1) }
            exit(2)
        } catch {
            FileHandle.standardError.write(Data("montrose-hub: migration failed, nothing committed: \(error)\n".utf8))
            exit(2)
        }
    }
}
