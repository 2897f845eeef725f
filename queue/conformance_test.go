package queue_test

import (
	"os"
	"path/filepath"
	"testing"

	"id06/queue/pgtest"
	"id06/queue/queuetest"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envClaimer); url != "" {
		os.Exit(runClaimer(url, os.Getenv("QUEUE_TEST_STATION")))
	}
	os.Exit(pgtest.Main(m))
}

func sqliteDB(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "station.db") }

func TestSQLite(t *testing.T) { queuetest.Run(t, sqliteDB) }

func TestPostgres(t *testing.T) { queuetest.Run(t, pgtest.URL) }

func BenchmarkSQLite(b *testing.B) { queuetest.Bench(b, sqliteDB) }

func BenchmarkPostgres(b *testing.B) { queuetest.Bench(b, pgtest.URL) }
