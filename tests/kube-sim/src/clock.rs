//! The virtual clock: simulated time runs `speed` times faster than the wall clock,
//! can change speed at run time and can be advanced in one step.

use std::time::{Duration, Instant};

/// Simulated time since the simulator started.
#[derive(Debug, Clone)]
pub struct Clock {
    speed: f64,
    base_wall: Instant,
    base_sim: Duration,
}

impl Clock {
    /// A clock at zero running at `speed`.
    pub fn new(speed: f64) -> Clock {
        Clock {
            speed,
            base_wall: Instant::now(),
            base_sim: Duration::ZERO,
        }
    }

    /// Simulated time now.
    pub fn now(&self) -> Duration {
        self.base_sim + self.base_wall.elapsed().mul_f64(self.speed)
    }

    /// Current speed (simulated seconds per wall second).
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Change the speed from now on.
    pub fn set_speed(&mut self, speed: f64) {
        self.base_sim = self.now();
        self.base_wall = Instant::now();
        self.speed = speed;
    }

    /// Jump forward.
    pub fn advance(&mut self, by: Duration) {
        self.base_sim += by;
    }

    /// The wall-clock time until simulated time reaches `at` (zero if past).
    pub fn wall_until(&self, at: Duration) -> Duration {
        let now = self.now();
        if at <= now {
            Duration::ZERO
        } else {
            (at - now).div_f64(self.speed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_and_speed() {
        let mut c = Clock::new(1000.0);
        c.advance(Duration::from_secs(60));
        assert!(c.now() >= Duration::from_secs(60));
        c.set_speed(1.0);
        let t = c.now();
        assert!(c.now() - t < Duration::from_secs(1));
        assert!(c.wall_until(t + Duration::from_secs(2)) <= Duration::from_secs(2));
    }
}
