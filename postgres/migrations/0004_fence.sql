-- 0004: fenced writes (portrait.WithLease). portrait_fence fails the
-- transaction it runs in, with SQLSTATE PT401, unless the lease of
-- p_instance is p_node's with p_fence and has not expired; otherwise it
-- holds a share lock on the lease until the transaction ends, so that the
-- lease cannot pass to another node before the write it guards commits.
CREATE FUNCTION portrait_fence(p_instance bigint, p_node text, p_fence bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM leases
    WHERE instance_id = p_instance AND node = p_node AND fence = p_fence AND expires_at > now()
    FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the lease of instance % is not node %''s with fence %', p_instance, p_node, p_fence
            USING ERRCODE = 'PT401';
    END IF;
END
$$;
