package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-dev/portrait"
)

var _ portrait.Store = (*DB)(nil)

// errExists is the cause of CreateInstance's error for a taken id.
var errExists = errors.New("instance already exists")

// bumpGeneration increments the generation counter; every transaction that
// changes an instance runs it, after it has written (and so locked) the
// instance's row, so that all of them lock in the same order.
const bumpGeneration = `UPDATE generation SET value = value + 1 WHERE id = 1`

// CreateInstance stores a new instance. It fails, saying that it exists,
// if the id is taken. CreatedAt is stored at microsecond precision.
func (db *DB) CreateInstance(ctx context.Context, inst portrait.Instance) error {
	if err := checkCtx(ctx, fmt.Sprintf("create instance %d", inst.ID)); err != nil {
		return err
	}
	settings, err := json.Marshal(inst.Settings)
	if err != nil {
		return fmt.Errorf("postgres: create instance %d: encode settings: %w", inst.ID, err)
	}
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO instances (id, type, engine, token_hash, settings, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
			int64(inst.ID), string(inst.Type), inst.Engine, nonNil(inst.TokenHash), string(settings), inst.CreatedAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errExists
		}
		if _, err := tx.Exec(ctx, notifyInstance, int64(inst.ID)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, bumpGeneration)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create instance %d: %w", inst.ID, err)
	}
	return nil
}

// instanceColumns are the columns scanInstance reads, in its order.
const instanceColumns = `id, type, engine, token_hash, settings, created_at`

// Instance returns one instance, or an error wrapping portrait.ErrNotFound.
func (db *DB) Instance(ctx context.Context, id portrait.InstanceID) (portrait.Instance, error) {
	if err := checkCtx(ctx, fmt.Sprintf("instance %d", id)); err != nil {
		return portrait.Instance{}, err
	}
	inst, err := scanInstance(db.pool.QueryRow(ctx, `SELECT `+instanceColumns+` FROM instances WHERE id = $1`, int64(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = portrait.ErrNotFound
	}
	if err != nil {
		return portrait.Instance{}, fmt.Errorf("postgres: instance %d: %w", id, err)
	}
	return inst, nil
}

// Instances returns every instance, ordered by id.
func (db *DB) Instances(ctx context.Context) ([]portrait.Instance, error) {
	if err := checkCtx(ctx, "list instances"); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+instanceColumns+` FROM instances ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list instances: %w", err)
	}
	defer rows.Close()
	var out []portrait.Instance
	for rows.Next() {
		inst, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list instances: %w", err)
		}
		out = append(out, inst)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list instances: %w", err)
	}
	return out, nil
}

// DeleteInstance removes an instance and everything stored for it (its
// key/value pairs, notifications, jobs and lease), or returns an error
// wrapping portrait.ErrNotFound.
func (db *DB) DeleteInstance(ctx context.Context, id portrait.InstanceID) error {
	err := db.changeInstance(ctx, id, `DELETE FROM instances WHERE id = $1`)
	if err != nil {
		return fmt.Errorf("postgres: delete instance %d: %w", id, err)
	}
	return nil
}

// SetTokenHash replaces an instance's token hash, or returns an error
// wrapping portrait.ErrNotFound.
func (db *DB) SetTokenHash(ctx context.Context, id portrait.InstanceID, hash []byte) error {
	err := db.changeInstance(ctx, id, `UPDATE instances SET token_hash = $2 WHERE id = $1`, nonNil(hash))
	if err != nil {
		return fmt.Errorf("postgres: set token hash of instance %d: %w", id, err)
	}
	return nil
}

// SetSettings replaces an instance's settings, or returns an error wrapping
// portrait.ErrNotFound.
func (db *DB) SetSettings(ctx context.Context, id portrait.InstanceID, s portrait.Settings) error {
	settings, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("postgres: set settings of instance %d: encode: %w", id, err)
	}
	if err := db.changeInstance(ctx, id, `UPDATE instances SET settings = $2 WHERE id = $1`, string(settings)); err != nil {
		return fmt.Errorf("postgres: set settings of instance %d: %w", id, err)
	}
	return nil
}

// changeInstance runs a statement that changes instance id ($1; args are
// $2…), bumps the generation and notifies ChannelInstances, in one
// transaction. It returns portrait.ErrNotFound if the statement changed no
// row.
func (db *DB) changeInstance(ctx context.Context, id portrait.InstanceID, stmt string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, stmt, append([]any{int64(id)}, args...)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return portrait.ErrNotFound
		}
		if _, err := tx.Exec(ctx, notifyInstance, int64(id)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, bumpGeneration)
		return err
	})
}

// Generation returns the instance generation counter. Every transaction
// that creates, changes or deletes an instance increments it, whichever
// process commits it; writes to the key/value space leave it alone.
func (db *DB) Generation(ctx context.Context) (int64, error) {
	if err := checkCtx(ctx, "generation"); err != nil {
		return 0, err
	}
	var g int64
	if err := db.pool.QueryRow(ctx, `SELECT value FROM generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("postgres: generation: %w", err)
	}
	return g, nil
}

// Get returns the value stored under key for instance id, or an error
// wrapping portrait.ErrNotFound if the instance or the key does not exist.
func (db *DB) Get(ctx context.Context, id portrait.InstanceID, key string) ([]byte, error) {
	if err := checkCtx(ctx, fmt.Sprintf("get %q of instance %d", key, id)); err != nil {
		return nil, err
	}
	var v []byte
	err := db.pool.QueryRow(ctx, `SELECT value FROM kv WHERE instance_id = $1 AND key = $2`, int64(id), key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		err = portrait.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get %q of instance %d: %w", key, id, err)
	}
	return nonNil(v), nil
}

// Put stores value under key for instance id, replacing any previous value.
// It returns an error wrapping portrait.ErrNotFound if the instance does
// not exist. Keys are text: valid UTF-8 without NUL characters.
func (db *DB) Put(ctx context.Context, id portrait.InstanceID, key string, value []byte) error {
	if err := checkCtx(ctx, fmt.Sprintf("put %q of instance %d", key, id)); err != nil {
		return err
	}
	_, err := db.execWrite(ctx, `INSERT INTO kv (instance_id, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value`,
		int64(id), key, nonNil(value))
	if sqlState(err) == codeForeignKey {
		err = portrait.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: put %q of instance %d: %w", key, id, err)
	}
	return nil
}

// DeleteKey removes the value under key of instance id; a missing key (or
// instance) is not an error.
func (db *DB) DeleteKey(ctx context.Context, id portrait.InstanceID, key string) error {
	if err := checkCtx(ctx, fmt.Sprintf("delete %q of instance %d", key, id)); err != nil {
		return err
	}
	if _, err := db.execWrite(ctx, `DELETE FROM kv WHERE instance_id = $1 AND key = $2`, int64(id), key); err != nil {
		return fmt.Errorf("postgres: delete %q of instance %d: %w", key, id, err)
	}
	return nil
}

// scanInstance reads one row of instanceColumns.
func scanInstance(row pgx.Row) (portrait.Instance, error) {
	var (
		inst     portrait.Instance
		id       int64
		typ      string
		hash     []byte
		settings []byte
		created  time.Time
	)
	if err := row.Scan(&id, &typ, &inst.Engine, &hash, &settings, &created); err != nil {
		return portrait.Instance{}, err
	}
	inst.ID = portrait.InstanceID(id)
	inst.Type = portrait.InstanceType(typ)
	inst.TokenHash = nonNil(hash)
	if err := json.Unmarshal(settings, &inst.Settings); err != nil {
		return portrait.Instance{}, fmt.Errorf("instance %d: decode settings: %w", id, err)
	}
	inst.CreatedAt = utc(created)
	return inst, nil
}
