package secrets

import "github.com/shipit-dev/shipit/internal/dotenv"

// The plaintext inside a .age file is an env file with Docker Compose's
// env_file rules (internal/dotenv), so `age -d` gives a usable .env and a
// hand-made env file encrypted with the age CLI is read as is.

type envEntry = dotenv.Entry

// encodeEnv fails (*dotenv.ValueError) on values no environment can carry:
// NUL bytes, invalid UTF-8.
func encodeEnv(entries []envEntry) ([]byte, error) { return dotenv.Serialize(entries) }

// decodeEnv fails with *dotenv.Error, which carries the line number.
func decodeEnv(data []byte) ([]envEntry, error) { return dotenv.Parse(data) }
