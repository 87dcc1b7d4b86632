-- ARGV: topic, id, header, payload, delay ms, dedup key ('' for none),
-- now ms, dedup window ms.
return publish(ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6],
  tonumber(ARGV[7]), tonumber(ARGV[8]))
