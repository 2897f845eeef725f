package queue

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// Every migration exists for both databases, so neither falls behind.
func TestMigrationsForEveryDialect(t *testing.T) {
	var versions [2][]string
	for i, d := range []string{"sqlite", "postgres"} {
		names, err := migrationNames(d)
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: %v %v", d, names, err)
		}
		for _, n := range names {
			versions[i] = append(versions[i], filepath.Base(n))
		}
	}
	if !slices.Equal(versions[0], versions[1]) {
		t.Fatalf("sqlite migrations %v, postgres %v: add the missing one to the other", versions[0], versions[1])
	}
}

func TestPlaceholdersNumberedForPostgres(t *testing.T) {
	d := newPostgresDialect()
	if got := d.q(`UPDATE t SET a = ?, b = ? WHERE c IN (?, ?)`); got != `UPDATE t SET a = $1, b = $2 WHERE c IN ($3, $4)` {
		t.Fatal(got)
	}
	if got := newSQLiteDialect().q(`SELECT ?`); got != `SELECT ?` {
		t.Fatal(got)
	}
}

// Orders accepted before the holder_names column get their names from the
// stored document when the migration runs.
func TestHolderNamesMigrationFillsOldOrders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "station.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	doc := []byte(`{"holder":{"first_name":"Anna","last_name":"Svensson","print_name":"A. Svensson"}}`)
	if _, _, err := s.Submit(ctx, NewOrder{ID: "old-1", Supplier: "sup", BodyHash: "h", Doc: doc, CardType: "id06", Photo: []byte("j")}, "api"); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before the migration.
	if _, err := s.w.ExecContext(ctx, `ALTER TABLE orders DROP COLUMN holder_names; DELETE FROM schema_migrations WHERE version = '004_holder_names'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{"A. Svensson", "Anna Svensson"} {
		if got, err := s.List(ctx, Filter{Search: q}); err != nil || len(got) != 1 {
			t.Errorf("search %q after the migration: %d orders (%v)", q, len(got), err)
		}
	}
}
