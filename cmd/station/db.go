package main

import (
	"fmt"
	"strings"

	"id06/queue"
)

func runDBMigrate(c *cli, args []string) error {
	fs := c.flags("db migrate")
	data := fs.String("data", "", "data directory (default ./var)")
	db := fs.String("db", "", "database: sqlite:PATH | postgres://… (default sqlite:DATA/station.db)")
	if _, err := c.args(fs, args, 0); err != nil {
		return err
	}
	// Opening migrates: once, under a lock every station takes.
	store, err := queue.Open(database(c, *data, *db))
	if err != nil {
		return err
	}
	defer store.Close()
	versions, err := store.Migrations(c.ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s (%s) is at schema %s: %s\n", store.Where(), store.Driver(), versions[len(versions)-1], strings.Join(versions, ", "))
	return nil
}
