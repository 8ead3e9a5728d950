import BulwarkApp

try await Entrypoint.main()
