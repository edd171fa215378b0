//! A slow reader's lag: the live events one SSE subscriber did not get because its bounded
//! buffer was full, counted and reported to it as one `event: gap` once it has room again,
//! instead of being lost silently.

use storage::arrivals::ArrivalId;

/// Events a subscriber missed in a row: how many, and the arrival ids of the first and
/// last of them. The client resumes with `Last-Event-ID` = the id it saw before the gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub dropped: u64,
    pub from_id: ArrivalId,
    pub to_id: ArrivalId,
}

impl Gap {
    /// The `event: gap` data: `{"dropped": N, "from_id": first, "to_id": last}`.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"dropped\":{},\"from_id\":{},\"to_id\":{}}}",
            self.dropped, self.from_id, self.to_id
        )
    }
}

/// What to do with the next event for a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// There is room: send it.
    Send,
    /// Send this gap first, then the event (room for both was checked).
    GapFirst(Gap),
    /// No room: it is dropped (and counted in the pending gap).
    Drop,
}

/// One subscriber's lag bookkeeping.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lag {
    /// Dropped since the last gap was reported.
    pending: Option<Gap>,
    /// Every event this stream dropped since it opened.
    dropped_total: u64,
}

impl Lag {
    /// Decides the fate of the event `id` given `room` free places in the buffer. A
    /// pending gap goes out only together with the event that follows it, so the gap is
    /// never the last thing the reader sees before more losses it does not hear of.
    pub fn admit(&mut self, room: usize, id: ArrivalId) -> Admit {
        match self.pending {
            Some(gap) if room >= 2 => {
                self.pending = None;
                Admit::GapFirst(gap)
            }
            None if room >= 1 => Admit::Send,
            _ => {
                self.dropped(id);
                Admit::Drop
            }
        }
    }

    /// Counts `id` as dropped (also for a send that failed for want of room).
    pub fn dropped(&mut self, id: ArrivalId) {
        self.dropped_total += 1;
        match &mut self.pending {
            Some(gap) => {
                gap.dropped += 1;
                gap.to_id = gap.to_id.max(id);
            }
            None => {
                self.pending = Some(Gap {
                    dropped: 1,
                    from_id: id,
                    to_id: id,
                })
            }
        }
    }

    /// Adds events lost before they reached this stream's account (`crate::shed`) to the
    /// pending gap, so the reader hears of them like of its own drops.
    pub fn merge(&mut self, lost: Gap) {
        self.dropped_total += lost.dropped;
        self.pending = Some(match self.pending {
            Some(gap) => Gap {
                dropped: gap.dropped + lost.dropped,
                from_id: gap.from_id.min(lost.from_id),
                to_id: gap.to_id.max(lost.to_id),
            },
            None => lost,
        });
    }

    /// The pending gap, to send on its own when nothing else arrives (the keep-alive
    /// tick), if there is room for it.
    pub fn flush(&mut self, room: usize) -> Option<Gap> {
        if room >= 1 {
            self.pending.take()
        } else {
            None
        }
    }

    /// Every event this stream dropped since it opened.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_buffer_drops_and_the_next_room_reports_one_gap_first() {
        let mut lag = Lag::default();
        assert_eq!(lag.admit(1, ArrivalId(1)), Admit::Send);
        assert_eq!(lag.admit(0, ArrivalId(2)), Admit::Drop);
        assert_eq!(lag.admit(0, ArrivalId(5)), Admit::Drop);
        // Room for the event alone is not enough: the gap must precede it.
        assert_eq!(lag.admit(1, ArrivalId(6)), Admit::Drop);
        let gap = Gap {
            dropped: 3,
            from_id: ArrivalId(2),
            to_id: ArrivalId(6),
        };
        assert_eq!(lag.admit(2, ArrivalId(7)), Admit::GapFirst(gap));
        assert_eq!(lag.admit(2, ArrivalId(8)), Admit::Send);
        assert_eq!(lag.dropped_total(), 3);
        assert_eq!(
            gap.to_json(),
            r#"{"dropped":3,"from_id":2,"to_id":6}"#,
            "the wire form"
        );
    }

    #[test]
    fn a_quiet_stream_gets_its_gap_on_its_own() {
        let mut lag = Lag::default();
        lag.dropped(ArrivalId(9));
        assert_eq!(lag.flush(0), None, "no room yet");
        let gap = lag.flush(1).expect("a gap");
        assert_eq!(
            (gap.dropped, gap.from_id, gap.to_id),
            (1, ArrivalId(9), ArrivalId(9))
        );
        assert_eq!(lag.flush(1), None, "reported once");
        assert_eq!(lag.admit(1, ArrivalId(10)), Admit::Send);
    }

    #[test]
    fn events_shed_upstream_join_the_pending_gap() {
        let mut lag = Lag::default();
        assert_eq!(lag.admit(0, ArrivalId(4)), Admit::Drop);
        lag.merge(Gap {
            dropped: 2,
            from_id: ArrivalId(2),
            to_id: ArrivalId(3),
        });
        let joined = Gap {
            dropped: 3,
            from_id: ArrivalId(2),
            to_id: ArrivalId(4),
        };
        assert_eq!(lag.admit(2, ArrivalId(9)), Admit::GapFirst(joined));
        assert_eq!(lag.dropped_total(), 3);
    }
}
