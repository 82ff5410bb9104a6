package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/portrait-dev/portrait"
)

var _ portrait.Store = (*DB)(nil)

// errExists is the cause of CreateInstance's error for a taken id.
var errExists = errors.New("instance already exists")

// keptChanges is how many generations' changed instances are kept.
const keptChanges = 10000

// bump increments the generation counter and records that the new
// generation changed instance id, dropping the records keptChanges
// generations old; every transaction that changes an instance runs it.
func bump(ctx context.Context, tx *sql.Tx, id portrait.InstanceID) error {
	var gen int64
	if err := tx.QueryRowContext(ctx, `UPDATE generation SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&gen); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO instance_changes (gen, instance_id) VALUES (?, ?)`, gen, int64(id)); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM instance_changes WHERE gen <= ?`, gen-keptChanges)
	return err
}

// ChangedSince returns the instances changed (created, changed or
// deleted) after generation since, and the current generation, read
// together. complete is false when the record no longer reaches back to
// since: the caller then re-reads every instance.
func (db *DB) ChangedSince(ctx context.Context, since int64) (ids []portrait.InstanceID, current int64, complete bool, err error) {
	tx, err := db.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, false, fmt.Errorf("sqlite: changed instances: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT value FROM generation WHERE id = 1`).Scan(&current); err != nil {
		return nil, 0, false, fmt.Errorf("sqlite: changed instances: %w", err)
	}
	if current == since {
		return nil, current, true, nil
	}
	var oldest sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(gen) FROM instance_changes`).Scan(&oldest); err != nil {
		return nil, 0, false, fmt.Errorf("sqlite: changed instances: %w", err)
	}
	if !oldest.Valid || oldest.Int64 > since+1 {
		return nil, current, false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT instance_id FROM instance_changes WHERE gen > ? AND gen <= ?`, since, current)
	if err != nil {
		return nil, 0, false, fmt.Errorf("sqlite: changed instances: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, 0, false, fmt.Errorf("sqlite: changed instances: %w", err)
		}
		ids = append(ids, portrait.InstanceID(id))
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("sqlite: changed instances: %w", err)
	}
	return ids, current, true, nil
}

// CreateInstance stores a new instance. It fails, saying so, if the id is
// taken. CreatedAt is stored in UTC with nanoseconds.
func (db *DB) CreateInstance(ctx context.Context, inst portrait.Instance) error {
	settings, err := json.Marshal(inst.Settings)
	if err != nil {
		return fmt.Errorf("sqlite: create instance %d: encode settings: %w", inst.ID, err)
	}
	created, err := formatTime(inst.CreatedAt)
	if err != nil {
		return fmt.Errorf("sqlite: create instance %d: %w", inst.ID, err)
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM instances WHERE id = ?`, int64(inst.ID)).Scan(&one)
		switch {
		case err == nil:
			return errExists
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO instances (id, type, engine, token_hash, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			int64(inst.ID), string(inst.Type), inst.Engine, nonNil(inst.TokenHash), string(settings), created)
		if err != nil {
			return err
		}
		return bump(ctx, tx, inst.ID)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create instance %d: %w", inst.ID, err)
	}
	return nil
}

// Instance returns one instance, or an error wrapping portrait.ErrNotFound.
func (db *DB) Instance(ctx context.Context, id portrait.InstanceID) (portrait.Instance, error) {
	row := db.db.QueryRowContext(ctx,
		`SELECT id, type, engine, token_hash, settings, created_at FROM instances WHERE id = ?`, int64(id))
	inst, err := scanInstance(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = portrait.ErrNotFound
	}
	if err != nil {
		return portrait.Instance{}, fmt.Errorf("sqlite: instance %d: %w", id, err)
	}
	return inst, nil
}

// Instances returns every instance, ordered by id.
func (db *DB) Instances(ctx context.Context) ([]portrait.Instance, error) {
	rows, err := db.db.QueryContext(ctx,
		`SELECT id, type, engine, token_hash, settings, created_at FROM instances ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list instances: %w", err)
	}
	defer rows.Close()
	var out []portrait.Instance
	for rows.Next() {
		inst, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list instances: %w", err)
		}
		out = append(out, inst)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list instances: %w", err)
	}
	return out, nil
}

// DeleteInstance removes an instance and its key/value pairs, or returns an
// error wrapping portrait.ErrNotFound.
func (db *DB) DeleteInstance(ctx context.Context, id portrait.InstanceID) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := execOne(ctx, tx, `DELETE FROM instances WHERE id = ?`, int64(id)); err != nil {
			return err
		}
		return bump(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete instance %d: %w", id, err)
	}
	return nil
}

// SetTokenHash replaces an instance's token hash, or returns an error
// wrapping portrait.ErrNotFound.
func (db *DB) SetTokenHash(ctx context.Context, id portrait.InstanceID, hash []byte) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := execOne(ctx, tx, `UPDATE instances SET token_hash = ? WHERE id = ?`, nonNil(hash), int64(id)); err != nil {
			return err
		}
		return bump(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: set token hash of instance %d: %w", id, err)
	}
	return nil
}

// SetSettings replaces an instance's settings, or returns an error wrapping
// portrait.ErrNotFound.
func (db *DB) SetSettings(ctx context.Context, id portrait.InstanceID, s portrait.Settings) error {
	settings, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("sqlite: set settings of instance %d: encode: %w", id, err)
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		if err := execOne(ctx, tx, `UPDATE instances SET settings = ? WHERE id = ?`, string(settings), int64(id)); err != nil {
			return err
		}
		return bump(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: set settings of instance %d: %w", id, err)
	}
	return nil
}

// Generation returns the instance generation counter. Every transaction
// that creates, changes or deletes an instance increments it, whichever
// process commits it; writes to the key/value space leave it alone.
func (db *DB) Generation(ctx context.Context) (int64, error) {
	var g int64
	if err := db.db.QueryRowContext(ctx, `SELECT value FROM generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("sqlite: generation: %w", err)
	}
	return g, nil
}

// Get returns the value stored under key for instance id, or an error
// wrapping portrait.ErrNotFound if the instance or the key does not exist.
func (db *DB) Get(ctx context.Context, id portrait.InstanceID, key string) ([]byte, error) {
	var v []byte
	err := db.db.QueryRowContext(ctx,
		`SELECT value FROM kv WHERE instance_id = ? AND key = ?`, int64(id), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = portrait.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get %q of instance %d: %w", key, id, err)
	}
	return nonNil(v), nil
}

// Put stores value under key for instance id, replacing any previous value.
// It returns an error wrapping portrait.ErrNotFound if the instance does
// not exist.
func (db *DB) Put(ctx context.Context, id portrait.InstanceID, key string, value []byte) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, fenceOf(ctx)); err != nil {
			return err
		}
		// Selecting from instances makes a missing instance insert no
		// row, which tells it apart from other failures.
		return execOne(ctx, tx, `INSERT INTO kv (instance_id, key, value)
			SELECT id, ?, ? FROM instances WHERE id = ?
			ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value`,
			key, nonNil(value), int64(id))
	})
	if err != nil {
		return fmt.Errorf("sqlite: put %q of instance %d: %w", key, id, err)
	}
	return nil
}

// DeleteKey removes the value under key of instance id; a missing key (or
// instance) is not an error.
func (db *DB) DeleteKey(ctx context.Context, id portrait.InstanceID, key string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, fenceOf(ctx)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM kv WHERE instance_id = ? AND key = ?`, int64(id), key)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete %q of instance %d: %w", key, id, err)
	}
	return nil
}

// execOne runs a statement that should affect one row, and returns
// portrait.ErrNotFound if it affected none.
func execOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return portrait.ErrNotFound
	}
	return nil
}

// scanInstance reads one row of id, type, engine, token_hash, settings,
// created_at.
func scanInstance(row interface{ Scan(...any) error }) (portrait.Instance, error) {
	var (
		inst     portrait.Instance
		id       int64
		typ      string
		hash     []byte
		settings string
		created  string
	)
	if err := row.Scan(&id, &typ, &inst.Engine, &hash, &settings, &created); err != nil {
		return portrait.Instance{}, err
	}
	inst.ID = portrait.InstanceID(id)
	inst.Type = portrait.InstanceType(typ)
	inst.TokenHash = nonNil(hash)
	if err := json.Unmarshal([]byte(settings), &inst.Settings); err != nil {
		return portrait.Instance{}, fmt.Errorf("instance %d: decode settings: %w", id, err)
	}
	t, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		return portrait.Instance{}, fmt.Errorf("instance %d: decode created_at: %w", id, err)
	}
	inst.CreatedAt = t.UTC()
	return inst, nil
}

// formatTime renders t in UTC as RFC 3339 with nanoseconds, which parses
// back to the same instant.
func formatTime(t time.Time) (string, error) {
	b, err := t.UTC().MarshalText()
	if err != nil {
		return "", fmt.Errorf("encode created_at: %w", err)
	}
	return string(b), nil
}

// nonNil returns b, or an empty slice if b is nil: the blob columns are NOT
// NULL, and callers get a non-nil slice back.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
