SELECT r.upd_dttm AS c0, r.res_status AS c1, r.test_cd AS c2, t.test_desc AS c3, p.pt_guid AS c4, r.collect_dttm AS c5, r.result_val AS c6, r.result_units AS c7, r.abn_flag AS c8, r.comments AS c9, r.ref_rng AS c10, t.dflt_units AS c11, 0 AS _b, r.res_guid AS _id, r.collect_dttm AS _k0 
FROM lab_result AS r JOIN pt_master AS p ON r.pt_seq = p.pt_seq LEFT OUTER JOIN lab_test_cd AS t ON r.test_cd = t.test_cd 
WHERE (r.del_flg IS NULL OR NOT (r.del_flg = 'Y' AND (1 = 1))) AND (p.del_flg IS NULL OR NOT (p.del_flg = 'Y' AND (1 = 1))) AND r.test_cd IS NOT NULL AND r.test_cd != '' AND r.test_cd = 'GLU' AND (1 = 1) ORDER BY r.collect_dttm DESC, r.res_guid 
 LIMIT 21
